"""Console wording (zh-CN by default, English on request) and times shown in a site's zone.

Wire timestamps are UTC microseconds (warmcard.contract); people read them in the site's
local zone, Asia/Shanghai unless the site's DeviceConfig says otherwise.
"""

from __future__ import annotations

from datetime import date, datetime

from warmcard.localtime import to_local

ZH = "zh-CN"
EN = "en"
DEFAULT_LANG = ZH

# key -> (zh-CN, English). Keep keys stable: templates and exports refer to them.
MESSAGES: dict[str, tuple[str, str]] = {
    "app_name": ("温馨卡", "Warmcard"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "username": ("用户名", "Username"),
    "password": ("密码", "Password"),
    "wrong_credentials": ("用户名或密码错误", "Wrong username or password"),
    "too_many_attempts": (
        "尝试次数过多，请 {minutes} 分钟后再试",
        "Too many attempts; try again in {minutes} min",
    ),
    "login_busy": (
        "同时登录的人太多，请几秒后再试",
        "Too many logins at this moment; try again in a few seconds",
    ),
    "body_too_large": ("请求内容过大", "Request body too large"),
    "bad_day": (
        "日期须为 2000-01-01 至 2099-12-31 之间的 YYYY-MM-DD，例如 2024-05-01",
        "day must be YYYY-MM-DD between 2000-01-01 and 2099-12-31, e.g. 2024-05-01",
    ),
    "not_found": ("未找到", "Not found"),
    "login_needed": ("请先登录", "Please log in"),
    "csrf_failed": ("表单已过期，请刷新页面", "Form expired or forged; reload the page"),
    "forbidden": ("无权操作", "Not allowed"),
    "prefecture": ("州", "Prefecture"),
    "county": ("县市", "County"),
    "township": ("乡镇", "Township"),
    "site": ("小院/社区", "Courtyard/community"),
    "overview": ("总览", "Overview"),
    "occupancy": ("在院人数", "People present"),
    "check_ins": ("签到人次", "Check-ins"),
    "meals": ("用餐份数", "Meals served"),
    "devices": ("设备", "Devices"),
    "device_online": ("在线", "Online"),
    "device_offline": ("离线", "Offline"),
    "last_seen": ("最后联系", "Last seen"),
    "wellbeing_alerts": ("关爱提醒", "Well-being alerts"),
    "not_seen_days": ("已 {days} 天未到院", "Not seen for {days} days"),
    "fraud_alerts": ("异常用餐提醒", "Anti-fraud alerts"),
    "monthly_report": ("月度报表", "Monthly report"),
    "export_csv": ("导出 CSV", "Export CSV"),
    "export_xlsx": ("导出 Excel", "Export Excel"),
    "date": ("日期", "Date"),
    "time": ("时间", "Time"),
    "total": ("合计", "Total"),
    "people": ("人员", "People"),
    "cards": ("卡片", "Cards"),
    "users": ("用户", "Users"),
    "role_viewer": ("查看员", "Viewer"),
    "role_manager": ("管理员", "Manager"),
    "role_admin": ("系统管理员", "Administrator"),
    "just_now": ("刚刚", "just now"),
    "minutes_ago": ("{n} 分钟前", "{n} min ago"),
    "hours_ago": ("{n} 小时前", "{n} h ago"),
    "days_ago": ("{n} 天前", "{n} days ago"),
    # --- console shell, overview and site pages
    "nav_alerts": ("告警", "Alerts"),
    "nav_registry": ("登记", "Registry"),
    "nav_reports": ("报表", "Reports"),
    "switch_lang": ("English", "中文"),
    "search_sites": ("搜索小院、乡镇", "Search sites or townships"),
    "filter_offline": ("仅看终端离线", "Kiosk offline only"),
    "filter_meals": ("仅看有用餐", "With meals only"),
    "sort": ("排序", "Sort"),
    "sort_area": ("按区域", "By area"),
    "sort_name": ("按名称", "By name"),
    "sort_present": ("在院人数最多", "Most present"),
    "sort_arrivals": ("到访最多", "Most arrivals"),
    "sort_meals": ("用餐最多", "Most meals"),
    "sort_offline": ("离线终端最多", "Most kiosks offline"),
    "present_now": ("在院", "Present"),
    "capacity": ("容量", "Capacity"),
    "arrivals_today": ("今日到访", "Arrivals today"),
    "meals_today": ("今日用餐", "Meals today"),
    "breakfast": ("早餐", "Breakfast"),
    "lunch": ("午餐", "Lunch"),
    "dinner": ("晚餐", "Dinner"),
    "meal_repeats": ("重复就餐", "Repeat meals"),
    "unknown_cards": ("未登记卡", "Unknown cards"),
    "kiosks": ("终端", "Kiosks"),
    "kiosks_offline": ("离线终端", "Kiosks offline"),
    "n_offline": ("{n} 台离线", "{n} offline"),
    "all_online": ("全部在线", "All online"),
    "n_sites": ("{n} 个小院", "{n} sites"),
    "page_of": ("第 {page} / {pages} 页", "Page {page} of {pages}"),
    "prev_page": ("上一页", "Previous"),
    "next_page": ("下一页", "Next"),
    "live": ("实时", "Live"),
    "connecting": ("连接中…", "Connecting…"),
    "reconnecting": ("重新连接中…", "Reconnecting…"),
    "updated_at": ("已更新 {time}", "Updated {time}"),
    "no_sites": ("没有符合条件的小院", "No matching sites"),
    "all_areas": ("全部", "All"),
    "area": ("区域", "Area"),
    "today_curve": ("今日在院人数与到访", "Today: people present and arrivals"),
    "meals_per_slot": ("每 10 分钟用餐", "Meals per 10 minutes"),
    "who_present": ("在院人员", "Who is here now"),
    "since": ("到院时间", "Since"),
    "nobody_present": ("目前无人在院", "Nobody is here now"),
    "visitor": ("外院长者", "Visitor from another site"),
    "last_7_days": ("近 7 天", "Last 7 days"),
    "last_30_days": ("近 30 天", "Last 30 days"),
    "daily_arrivals": ("每日到访", "Daily arrivals"),
    "daily_meals": ("每日用餐", "Daily meals"),
    "last_heartbeat": ("最后心跳", "Last heartbeat"),
    "outbox_depth": ("待上传", "Outbox"),
    "reader": ("读卡器", "Reader"),
    # A kiosk's reader as its heartbeat reports it (warmcard.contract.ReaderState).
    "reader_ok": ("正常", "OK"),
    "reader_fault": ("故障", "Fault"),
    "reader_absent": ("未连接", "Absent"),
    "mode_entrance": ("门口签到", "Entrance"),
    "mode_canteen": ("食堂", "Canteen"),
    "state_online": ("在线", "Online"),
    "state_offline": ("离线", "Offline"),
    "state_stale": ("无心跳", "No heartbeat"),
    "state_unknown": ("未联系", "Never heard from"),
    "repeat_flag": ("重复领餐", "Repeat"),
    "no_repeats": ("无重复就餐", "No repeat meals"),
    "back_to_overview": ("返回总览", "Back to overview"),
    "loading": ("加载中…", "Loading…"),
    # --- alerts and visits pages
    "alerts_open": ("{n} 条未处理告警", "{n} open alerts"),
    "alerts_changed": ("告警有变化，正在刷新…", "Alerts changed; refreshing…"),
    "visits_due": ("需探访", "Visits due"),
    "device_alerts": ("终端告警", "Kiosk alerts"),
    "kind": ("类型", "Kind"),
    "state": ("状态", "State"),
    "all": ("全部", "All"),
    "filter": ("筛选", "Filter"),
    "detail": ("详情", "Detail"),
    "opened_at": ("发生", "Opened"),
    "latest": ("最近一次", "Latest"),
    "acknowledge": ("确认", "Acknowledge"),
    "close": ("关闭", "Close"),
    "no_alerts": ("没有告警", "No alerts"),
    "alert_state_open": ("未处理", "Open"),
    "alert_state_acknowledged": ("已确认", "Acknowledged"),
    "alert_state_closed": ("已关闭", "Closed"),
    "person": ("人员", "Person"),
    "flag": ("关爱类别", "Flag"),
    "home_site": ("所属小院", "Home site"),
    "last_seen_at": ("最后到院", "Last seen"),
    "never_seen": ("无刷卡记录", "Never seen"),
    "visit_note": ("探访情况", "Visit note"),
    "record_visit": ("记录探访", "Record visit"),
    "acknowledge_selected": ("确认所选告警", "Acknowledge selected"),
    "select": ("选择", "Select"),
    "days_unseen": ("已 {n} 天未到院", "Not seen for {n} days"),
    "call": ("拨打电话", "Call"),
    "last_seen_where": ("最后刷卡", "Last seen"),
    "nobody_due": ("暂无需探访人员", "Nobody is due a visit"),
    "closed_days_paused": ("另有闭院 {n} 天不计", "{n} closed days not counted"),
    # --- care: flags, contacts, closures
    "care_flags": ("关爱标记", "Care flags"),
    "flag_on": ("设置", "Set"),
    "flag_off": ("取消", "Clear"),
    "flagged_since": ("标记于 {when}", "since {when}"),
    "not_flagged": ("未标记", "Not set"),
    "contact": ("联系方式", "Contact"),
    "phone": ("电话", "Phone"),
    "no_contact": ("未登记", "None on record"),
    "nav_closures": ("闭院日历", "Closures"),
    "closure_add": ("新增闭院", "Add a closure"),
    "start_day": ("开始日期", "First day"),
    "end_day": ("结束日期（可空）", "Last day (optional)"),
    "reason": ("原因", "Reason"),
    "until_notice": ("另行通知", "until further notice"),
    "no_closures": ("暂无闭院", "No closures"),
    "closures_hint": (
        "闭院期间不计入“未到院天数”；区域的闭院适用于其下所有小院。",
        "Closed days do not count as days unseen; an area's closure covers every site in it.",
    ),
    # --- registry pages
    "search": ("搜索", "Search"),
    "person_id": ("人员编号", "Person ID"),
    "display_name": ("显示名", "Display name"),
    "active_cards": ("在用卡片", "Active cards"),
    "add_person": ("新增人员", "Add a person"),
    "add": ("新增", "Add"),
    "import_people": ("批量导入人员", "Import people"),
    "import_hint": (
        "粘贴表格中的行（含表头），或上传与命令行相同的 CSV/XLSX：person_id, display_name, "
        "site_id, role。先预览；有任何一行出错则不写入。",
        "Paste rows with their header, or upload the CSV/XLSX the command line takes: "
        "person_id, display_name, site_id, role. Preview first; one bad row and nothing is "
        "written.",
    ),
    "paste_rows": ("粘贴行", "Pasted rows"),
    "upload_sheet": ("或上传文件", "Or upload a file"),
    "preview": ("预览", "Preview"),
    "import_n": ("导入 {n} 人", "Import {n} people"),
    "import_problems": ("{n} 处问题，未写入", "{n} problem(s), nothing written"),
    "imported_n": ("已导入 {n} 人", "{n} people imported"),
    "new_row": ("新增", "New"),
    "updated_row": ("更新", "Update"),
    "line": ("行", "Line"),
    "problem": ("问题", "Problem"),
    # A sheet's problems (registry/importer.py): the English is what `warmcard import` prints.
    "import_row_problem": ("第 {line} 行：{problem}", "line {line}: {problem}"),
    "import_nothing": ("没有可导入的行", "nothing to import"),
    "import_not_xlsx": (
        "不是 Excel .xlsx 工作簿；请重新另存为 .xlsx",
        "not an Excel .xlsx workbook; save it again as .xlsx",
    ),
    "import_not_utf8": (
        "不是 UTF-8 文本；请另存为“CSV UTF-8”（Excel 默认存为 GBK）",
        "not UTF-8 text; save as 'CSV UTF-8' (Excel saves GBK by default)",
    ),
    "import_empty_file": (
        "文件为空；第一行须为列名",
        "empty file; the first line must be the column names",
    ),
    "import_missing_columns": ("缺少列：{columns}", "missing column(s): {columns}"),
    "import_unknown_columns": (
        "未知列：{columns}；可用的列：{allowed}",
        "unknown column(s): {columns}; allowed: {allowed}",
    ),
    "import_value_count": ("有 {n} 个值，应为 {expected} 个", "{n} values, expected {expected}"),
    "import_id_invalid": (
        "{column} {value!r} 格式不对（例如 {example}）",
        "{column} {value!r} is not valid (e.g. {example})",
    ),
    "import_id_repeated": (
        "{column} {value} 与第 {first} 行重复",
        "{column} {value} already on line {first}",
    ),
    "column_person_id": ("编号", "person_id"),
    "column_site_id": ("院编号", "site_id"),
    "column_device_id": ("终端编号", "device_id"),
    "import_display_name": ("姓名{problem}", "display_name {problem}"),
    "import_site_unknown": (
        "院 {site!r} 既不在登记中，也不在小院文件中",
        "site_id {site!r} is neither in the registry nor in the sites file",
    ),
    "import_site_outside": (
        "院 {site} 不存在或不在您的区域",
        "site {site} does not exist or is outside your areas",
    ),
    "import_person_elsewhere": (
        "编号 {person} 已被其他院的长者使用",
        "person_id {person} is taken by a person outside your areas",
    ),
    "import_role": (
        "角色 {role!r} 须为 elder 或 staff（默认 elder）",
        "role {role!r} must be elder or staff (default elder)",
    ),
    "name_empty": ("为空", "is empty"),
    "name_too_long": ("超过 {max_len} 个字符", "is longer than {max_len} characters"),
    "name_invisible": (
        "含控制字符或不可见字符（U+{code}）",
        "holds a control or invisible character (U+{code})",
    ),
    "card_active": ("在用", "Active"),
    "card_inactive": ("停用", "Inactive"),
    "deactivate": ("停用", "Deactivate"),
    "card_history": ("持卡记录", "Card history"),
    "valid_from": ("起", "From"),
    "valid_to": ("止", "To"),
    "before_records": ("早于记录", "Before records"),
    "until_now": ("至今", "Now"),
    "assign_card": ("登记卡片", "Assign a card"),
    "card_number": ("卡号", "Card number"),
    "byte_order": ("字节序", "Byte order"),
    # The 10-digit number printed on a card, read as most keyboard-wedge readers do, or reversed.
    "byte_order_le": ("小端（常见）", "Little-endian (usual)"),
    "byte_order_be": ("大端", "Big-endian"),
    "assign": ("登记", "Assign"),
    "rename": ("修改显示名", "Rename"),
    "save": ("保存", "Save"),
    "holder": ("持卡人", "Holder"),
    "device": ("终端", "Kiosk"),
    "mode": ("模式", "Mode"),
    "enrolling": ("录入中", "Enrolling"),
    "enrol": ("刷卡录入", "Enrol"),
    "minutes": ("分钟", "Minutes"),
    "start_enrol": ("开启录入", "Start enrol mode"),
    "stop": ("停止", "Stop"),
    "enrol_hint": (
        "请在该终端上刷新卡；未登记的卡会出现在下面。",
        "Tap the new card on this kiosk; unknown cards appear below.",
    ),
    "enrol_on_until": ("录入中，截止 {until}", "Enrol mode on until {until}"),
    "enrol_off": ("录入未开启", "Enrol mode off"),
    "already_assigned": ("已登记", "Assigned"),
    "pick_person": ("姓名、拼音首字母或编号", "Name, pinyin initials or id"),
    "no_match": ("没有符合的人员", "Nobody matches"),
    "card_held_by": ("此卡属于 {name}", "This card belongs to {name}"),
    "transfer_card": ("此卡属于 {name}，是否转移？", "This card belongs to {name}. Move it?"),
    "enrolled_to": ("已登记给 {name}", "Assigned to {name}"),
    "has_card": ("已有卡", "Has a card"),
    "enrol_failed": ("登记失败：{error}", "Not assigned: {error}"),
    "move_card": ("转移", "Move it"),
    "cancel": ("取消", "Cancel"),
    "confirm_deactivate": (
        "停用卡 {uid}？停用后刷此卡视为未登记的卡。",
        "Deactivate card {uid}? It then taps as an unknown card.",
    ),
    "confirm_disable": (
        "停用账户 {user}？其所有登录会话立即结束，之后无法登录。",
        "Disable the account {user}? Their sessions end at once and they cannot log in.",
    ),
    "confirm_revoke": (
        "撤销 {user} 在 {area} 的角色？",
        "Revoke {user}'s role on {area}?",
    ),
    "confirm_password": (
        "重置 {user} 的密码？其所有登录会话立即结束。",
        "Reset {user}'s password? Their sessions end at once.",
    ),
    "not_done": ("未完成", "Not done"),
    "back": ("返回", "Back"),
    "n_total": ("共 {n} 条", "{n} in all"),
    # --- reports page
    "month": ("月份", "Month"),
    "show": ("查看", "Show"),
    "meals_served": ("用餐合计", "Meals served"),
    "meals_by_hand": ("其中补录", "Of which by hand"),
    "elders_served": ("用餐长者（去重）", "Distinct elders served"),
    "visits_made": ("探访次数", "Visits made"),
    "not_available": ("未提供", "Not available"),
    "attendance": ("签到人数", "People checked in"),
    "pick_area_month": ("请选择区域和月份", "Choose an area and a month"),
    "meal_sheet": ("长者用餐明细表", "Meal sheet per elder"),
    "print": ("打印", "Print"),
    "totals": ("合计（按小院、乡镇）", "Totals (per courtyard, per township)"),
    "manual_mark": ("* 表示含补录用餐", "* marks meals recorded by hand"),
    "sig_canteen": ("食堂负责人签字", "Canteen manager's signature"),
    "sig_township": ("乡镇审核人签字", "Township reviewer's signature"),
    "sig_finance": ("县财政审核人签字", "County finance reviewer's signature"),
    "sig_date": ("日期", "Date"),
    # --- a meal recorded by hand (补录, /sites/<id>/meals/manual)
    "hand_meal": ("补录用餐", "Record a meal by hand"),
    "hand_meal_hint": (
        "长者忘带卡时，由本院食堂员工补录；计入报表并标为补录。每位长者每餐只能记录一次。",
        "When an elder forgot the card, the canteen's staff record the meal here; it counts in"
        " the reports, marked as by hand. One record per elder and meal.",
    ),
    "hand_meal_elder": ("长者（姓名、拼音首字母或编号）", "Elder (name, pinyin initials or id)"),
    "hand_meal_chosen": ("已选：{name}", "Chosen: {name}"),
    "hand_meal_period": ("餐次", "Meal"),
    "hand_meal_day": ("日期（最多 {n} 天前）", "Date (up to {n} days back)"),
    "hand_meal_reason": ("补录原因", "Reason"),
    "hand_meal_reasons": (
        "忘带卡|卡片损坏|读卡器故障",
        "forgot the card|card damaged|reader fault",
    ),
    "hand_meal_submit": ("确认补录", "Record the meal"),
    "hand_meal_done": (
        "已补录：{name} {day} {period}（{by}）",
        "Recorded: {name}, {period} on {day} ({by})",
    ),
    "hand_meal_recent": ("近 {n} 天的补录", "Recorded by hand in the last {n} days"),
    "hand_meal_by": ("补录人", "Recorded by"),
    "hand_meal_at": ("补录时间", "Recorded at"),
    "hand_meal_replaced": (
        "已由终端刷卡记录取代，只计一次（{device}，{at}）",
        "Replaced by the kiosk's card tap, counted once ({device}, {at})",
    ),
    "hand_meal_link": ("补录用餐（忘带卡）", "Record a meal by hand (card forgotten)"),
    # --- subsidy rates (/reports/subsidy)
    "subsidy_rates": ("补贴标准", "Subsidy rates"),
    "subsidy_hint": (
        "每县一个补贴类别，按餐次每餐补贴金额（元，最多两位小数）。每次修改记入审计日志。",
        "One category per county, yuan per meal for each period (at most 2 decimals). Every"
        " change is recorded in the audit log.",
    ),
    "subsidy_category": ("补贴类别", "Subsidy category"),
    "not_configured": ("未配置", "Not configured"),
    "updated_by": ("修改人", "Changed by"),
    "yuan": ("元", "CNY"),
    "changed_at": ("修改时间", "Changed at"),
    "subsidy_saved": ("已保存 {county} 的补贴标准", "Saved the subsidy rates of {county}"),
    # --- user administration (/admin/users)
    "nav_users": ("用户", "Users"),
    "user_admin": ("用户管理", "User administration"),
    "user_admin_scope": (
        "仅列出全部授权都在您管理区域内的用户",
        "Only users whose grants all lie inside the areas you administer",
    ),
    "grants": ("授权", "Grants"),
    "role": ("角色", "Role"),
    "user_enabled": ("启用", "Enabled"),
    "user_disabled": ("已停用", "Disabled"),
    "create_user": ("新建用户", "Create user"),
    "password_blank_generates": ("留空则生成一次性密码", "Leave empty to generate one"),
    "user_self_note": (
        "不能在此修改自己的账户，请另一位管理员操作",
        "You cannot change your own account here; ask another admin",
    ),
    "revoke": ("撤销", "Revoke"),
    "grant_role": ("授予角色", "Grant a role"),
    "reset_password": ("重置密码", "Reset password"),
    "enable_user": ("启用账户", "Enable account"),
    "disable_user": ("停用账户", "Disable account"),
    "disable_user_note": (
        "停用后立即不能登录，已登录的会话结束",
        "Stops logins at once and ends the user's sessions",
    ),
    "password_once": ("新密码", "New password"),
    "password_for": ("用户 {username} 的密码：", "Password of {username}:"),
    "password_set": ("已设置您输入的密码。", "The password you entered is set."),
    "password_once_note": (
        "此密码只显示这一次，请当面或电话告知本人，勿通过微信群发送",
        "This password is shown only this once; tell the user in person or by phone, "
        "not in a group chat",
    ),
    # --- audit log page
    "audit_log": ("审计日志", "Audit log"),
    "audit_user": ("用户", "User"),
    "audit_action": ("操作", "Action"),
    "audit_kind": ("对象类型", "Object kind"),
    # One per cloud_ingest.console.audit.Action and ObjectKind; the log itself keeps the value.
    "audit_action_view": ("查看", "View"),
    "audit_action_search": ("搜索", "Search"),
    "audit_action_export": ("导出", "Export"),
    "audit_action_create": ("新建", "Create"),
    "audit_action_edit": ("修改", "Edit"),
    "audit_action_enrol": ("登记卡", "Enrol"),
    "audit_action_erase": ("删除个人信息", "Erase"),
    "audit_action_account": ("账户", "Account"),
    "audit_kind_person": ("人员", "Person"),
    "audit_kind_card": ("卡", "Card"),
    "audit_kind_site": ("站点", "Site"),
    "audit_kind_device": ("设备", "Device"),
    "audit_kind_account": ("账户", "Account"),
    "audit_kind_report": ("报表", "Report"),
    "audit_kind_visit": ("探访", "Visit"),
    "audit_kind_audit": ("审计日志", "Audit log"),
    "audit_kind_meal": ("补录用餐", "Hand-recorded meal"),
    "audit_kind_subsidy": ("补贴标准", "Subsidy rates"),
    "audit_object": ("对象", "Object"),
    "audit_from": ("起始日", "From"),
    "audit_to": ("截止日", "To"),
    "audit_time": ("时间", "Time"),
    "audit_detail": ("详情", "Detail"),
    "audit_client": ("来源", "From address"),
    "audit_count": ("共 {total} 条", "{total} rows"),
    # --- erasure
    "erase_person": ("删除此人的全部个人信息", "Erase this person's personal data"),
    "erased": ("已删除 {person_id} 的个人信息", "Personal data of {person_id} erased"),
    # notifications (/alerts/notify)
    "nav_notify": ("告警通知", "Notifications"),
    "notify_intro": (
        "本区域及下属各院的新告警会推送到这里设置的群机器人（企业微信/钉钉）和邮箱；"
        "发送失败会自动重试（5 秒、30 秒、2 分、10 分、1 小时）。",
        "New alerts in these areas and their sites are pushed to the group robots (WeCom, "
        "DingTalk) and mailboxes set here; failures are retried (5 s, 30 s, 2 min, 10 min, 1 h).",
    ),
    "notify_targets": ("接收方", "Targets"),
    "notify_add": ("添加接收方", "Add a target"),
    "channel": ("方式", "Channel"),
    "channel_webhook": ("群机器人", "Group robot"),
    "channel_email": ("邮件", "E-mail"),
    "address": ("地址", "Address"),
    "address_hint": (
        "机器人的 Webhook 网址，或邮箱（多个用逗号分隔）",
        "The robot's webhook URL, or e-mail addresses separated by commas",
    ),
    "secret": ("签名密钥（可选）", "Signing secret (optional)"),
    "label": ("备注", "Label"),
    "alert_kinds": ("告警类型", "Alert kinds"),
    "kinds_hint": ("不选即全部类型", "None ticked: every kind"),
    "all_kinds": ("全部", "All"),
    "added_by": ("添加人", "Added by"),
    "send_test": ("发送测试", "Send test"),
    "remove": ("删除", "Remove"),
    "no_targets": ("尚未设置接收方", "No targets yet"),
    "delivery_log": ("发送记录", "Delivery log"),
    "no_deliveries": ("暂无发送记录", "Nothing sent yet"),
    "alert_no": ("告警", "Alert"),
    "test_message": ("测试", "Test"),
    "attempt": ("第几次", "Attempt"),
    "result": ("结果", "Result"),
    "error_text": ("错误", "Error"),
    "next_try": ("下次重试", "Next try"),
    "delivery_sent": ("已送达", "Delivered"),
    "delivery_error": ("失败", "Failed"),
    "delivery_pending": ("待重试", "Retrying"),
    "delivery_failed": ("已放弃", "Given up"),
    "test_queued": (
        "测试消息已发出，结果见下方发送记录。",
        "Test sent; its result is in the delivery log below.",
    ),
    "smtp_missing": (
        "服务器未配置 SMTP（ingest.toml 的 [notify.smtp]），邮件不会送出。",
        "No SMTP server is configured ([notify.smtp] in ingest.toml): e-mail will not go out.",
    ),
}


def pick_lang(requested: str | None) -> str:
    """The page language: English only when asked for (?lang=en or a cookie), else zh-CN."""
    if requested and requested.strip().lower().split("-")[0] == "en":
        return EN
    return ZH


def t(key: str, lang: str = DEFAULT_LANG, **params: object) -> str:
    """One message in one language; a missing key is a programming error (KeyError)."""
    zh, en = MESSAGES[key]
    return (en if lang == EN else zh).format(**params)


def both(key: str, **params: object) -> str:
    """zh-CN first with English beside it, the project's form for user-facing text."""
    zh, en = MESSAGES[key]
    return f"{zh.format(**params)} {en.format(**params)}"


class Said(str):
    """A message whose text is its English (logs, `file:line:` reports, the command line) and
    that keeps its key and parameters, so a page can show it in zh-CN with the English beside."""

    key: str
    params: dict[str, object]

    def __new__(cls, key: str, **params: object) -> Said:
        said = super().__new__(cls, t(key, EN, **params))
        said.key, said.params = key, params
        return said

    def says(self, lang: str) -> str:
        """The message in `lang`; parameters that are themselves Said follow the language."""
        params = {k: v.says(lang) if isinstance(v, Said) else v for k, v in self.params.items()}
        return t(self.key, lang, **params)


def format_ts(ts: int | datetime, tz: str | None = None, seconds: bool = False) -> str:
    """'2024-05-01 12:30' in the site's zone; the same digits in both languages."""
    return to_local(ts, tz).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def format_date(day: date, lang: str = DEFAULT_LANG) -> str:
    """'2024年5月1日' or '1 May 2024'."""
    if lang == EN:
        return f"{day.day} {day.strftime('%b')} {day.year}"
    return f"{day.year}年{day.month}月{day.day}日"


def format_month(year: int, month: int, lang: str = DEFAULT_LANG) -> str:
    """'2024年5月' or 'May 2024', for report titles."""
    if lang == EN:
        return date(year, month, 1).strftime("%B %Y")
    return f"{year}年{month}月"


def format_ago(seconds: float, lang: str = DEFAULT_LANG) -> str:
    """'3 分钟前' / '3 min ago', for device last-seen and similar."""
    if seconds < 60:
        return t("just_now", lang)
    if seconds < 3600:
        return t("minutes_ago", lang, n=int(seconds // 60))
    if seconds < 86400:
        return t("hours_ago", lang, n=int(seconds // 3600))
    return t("days_ago", lang, n=int(seconds // 86400))
